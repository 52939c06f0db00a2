from django.urls import path

from contracts.api import views

urlpatterns = [
    path("customers", views.CustomerListView.as_view()),
    path("customers/<uuid:customer_id>", views.CustomerDetailView.as_view()),
    path("contracts", views.ContractListView.as_view()),
    path("contracts/<uuid:contract_id>", views.ContractDetailView.as_view()),
    path("contracts/<uuid:contract_id>/suspend", views.SuspendContractView.as_view()),
    path("contracts/<uuid:contract_id>/reactivate", views.ReactivateContractView.as_view()),
    path("contracts/<uuid:contract_id>/cancel", views.CancelContractView.as_view()),
    path("contracts/<uuid:contract_id>/mandate", views.MandateView.as_view()),
    path("contracts/<uuid:contract_id>/mandate/revoke", views.RevokeMandateView.as_view()),
    path("contracts/<uuid:contract_id>/subscribers", views.SubscriberListView.as_view()),
    path("contracts/<uuid:contract_id>/subscribers/<str:ref>", views.SubscriberDetailView.as_view()),
]
